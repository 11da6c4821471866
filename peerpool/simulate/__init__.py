"""A deterministic simulated exchange that writes what real devices write, plus the ground truth.

``peerpool simulate`` (:mod:`peerpool.simulate.cli`) drives :class:`engine.Simulation`: the
exchange (:mod:`topology`), its traffic (:mod:`traffic`, :mod:`packets`, :mod:`matrix`), faults
(:mod:`faults`), SNMP counters (:mod:`counters`), sFlow v5 / IPFIX / NetFlow v9 encoders
(:mod:`sflow`, :mod:`flowexport`) writing spool files (:mod:`spool`), the MRT RIB (:mod:`mrt`),
the IX-F export (:mod:`ixf`) and the Parquet truth (:mod:`truth`). See README.md here.
"""
