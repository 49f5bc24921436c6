"""Printer MIB tables and pure decoders.

Plain varbinds in (an OID tuple and a Python value), typed models out. This
package does no I/O and imports nothing but the standard library and pydantic.
"""
