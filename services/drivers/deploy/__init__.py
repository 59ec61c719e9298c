"""Deploy interfaces that work through the agent in the deploy ramdisk: ``direct``, ``iscsi``."""
