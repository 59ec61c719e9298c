"""The boot service of one provisioning network: DHCP (dnsmasq), TFTP, HTTP, the DHCP filter."""
