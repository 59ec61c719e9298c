"""The Enclume agent: runs in the deploy ramdisk, looks its node up, heartbeats, runs commands.

Standard library only (plus rtslib-fb for the iSCSI export, imported where used): the ramdisk has
Debian's python3.11 and a few Debian tools, no pip packages.
"""

__version__ = "0.1.0"
