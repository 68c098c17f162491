"""The leaderboard generator (installed as ``dendrobench.leaderboard``): records in, a static site out.

``build`` loads records once into the rows and comparisons of the board and writes the views:
HTML pages (``templates/``, ``static/``), Markdown, CSV and the README headline; ``claims_page``
is the claims table and ``svg`` draws the figures. Statistics are not computed here but taken from
``dendrobench.evidence``.
"""
