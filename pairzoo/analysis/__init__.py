"""Analysis of finished runs: what the store's rows say, never how they were trained.

    from pairzoo.analysis.reporting import spec_table
    from pairzoo.analysis.analyses import analyses_for

Modules: `rows` (units, failed runs and recipes, read one way), `tables` and `reporting` (pandas
tables, ours beside the report's, with 95 % CIs), `plots` and `forest` (learning curves, forest
plots), `effects` and `claims` (effects with CIs and Holm-adjusted p-values; the reports' claims
checked), `analyses` (what `pairzoo effects` prints), `pages` (one page per report), `stores`
(which tables a store holds: each spec's through its plan, the other rows split by recipe).

It reads specs and stores from `pairzoo.experiments` (running imports only `rows` from here:
the selection rules read finished rows its way). Nothing here imports
TensorFlow.
"""
