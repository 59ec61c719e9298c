"""``enclume``: the operator's command line for the Enclume (Ironic v1) API."""
