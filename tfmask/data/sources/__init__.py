"""Input formats. Each reader lists work items and turns one item into an
:class:`ItemResult` (a serialized example plus what it found), so the
converter can run items in parallel and report problems in input order.
"""
