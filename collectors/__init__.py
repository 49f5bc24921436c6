"""SNMP transport, discovery and polling: the only package that touches pysnmp."""
