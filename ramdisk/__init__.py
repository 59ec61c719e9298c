"""Boot images built from Debian packages (kernels and initramfs images for machines)."""
