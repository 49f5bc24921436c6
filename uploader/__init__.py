"""Envelopes, signing, the durable queue and the MQTT adapter.

Moves signed bytes; knows nothing about printers.
"""
