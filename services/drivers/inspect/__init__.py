"""Inspect interfaces: ``agent`` boots the deploy ramdisk and asks its agent for the inventory."""
