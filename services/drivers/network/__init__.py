"""The ``vlan`` network interface: a node's switch ports move between VLANs as it is deployed.

``vlan`` chooses the VLANs, ``inventory`` reads the switches file, ``batching`` serialises and
groups the changes of each switch, ``switches/`` talks to the switches themselves.
"""
