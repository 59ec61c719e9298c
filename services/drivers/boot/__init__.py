"""Boot interfaces: how a node is network-booted into the deploy ramdisk and back to its disk."""
