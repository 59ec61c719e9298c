"""Bulk enrollment from an inventory file (``enclume enroll``).

``read`` turns a YAML or CSV file into raw entries that remember their line numbers,
``validate`` checks them (alone, then against the server's drivers) into node specifications,
``plan`` compares those with the nodes and ports the API has, ``apply`` carries the plan out.
"""
