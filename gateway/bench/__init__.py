"""``ocpp-gateway bench``: the load benchmark, gateway versus direct and a naive proxy.

Layer: top (a tool beside ``demo``). The bench is a *peer* of the gateway, like
``gateway.sim``: it starts the gateway as a real ``ocpp-gateway serve`` process and
talks to it over loopback websockets only. It must not import anything from the
gateway outside ``gateway.bench`` (``tests/integration/test_bench.py`` checks this), so
what it measures is the product as shipped, and a bug in the gateway cannot hide in
shared code.

Every party runs in its own OS process:

* ``stub_csms``: a cheap 2.0.1 (and 1.6) CSMS answering from pre-serialised frames;
* ``naive_proxy``: the comparison point, a pass-through proxy that only parses and
  re-serialises each frame (DESIGN.md "Performance shape");
* ``loadgen``: simulated 1.6 chargers, spread over several generator processes;
* the gateway under test (``parties`` starts it), or an external one (``--target``).

``runner`` drives the phases, ``procfs`` reads CPU and memory from ``/proc``, ``stats``
turns samples into figures and ``report`` prints the table and writes the JSON.
"""
