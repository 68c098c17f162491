"""The leaderboard generator (installed as ``dendrobench.leaderboard``): records in, a static site out.

Three layers. The model (``model``: records and claims loaded once into index rows and their
comparisons); the views, which only format it (``tables``: CSV, Markdown, the README headline;
``build``: the HTML pages and the site on disk; ``claims_page``; ``svg`` figures; ``formatting``, the
one way each kind of number is written); and the templates (``templates/``, ``static/``). Statistics
are not computed here but taken from ``dendrobench.evidence``.
"""
