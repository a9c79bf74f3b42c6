"""The reproduce notebook: the vendor's whole document run as child runs, a verdict per claim.

Layer 6, above the notebooks' capabilities, whose runs it starts as children, and below
kit.cli. Modules: params (its parameters and plan of children), reproduction (running the
children), children (``children.json``), model_check (the model revision, in the kernel),
verdicts (the rules), report (the notebook's report).
"""
