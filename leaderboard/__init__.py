"""The leaderboard generator: statistics over records, static HTML, Markdown and CSV."""
