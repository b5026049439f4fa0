"""Providers: registries that are someone else's product (Streamkap, Airweave, Airbyte Agents,
Splendor), each behind the Registry interface and picked by its URL scheme (`NAME+https://`).

`base.Provider` holds what they share (identity, write-only fields, versions, waiting for
asynchronous operations, the plan review); each module here is one API's calls and mapping.
"""
