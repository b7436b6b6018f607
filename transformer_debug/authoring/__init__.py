"""The course author's tools: markers, catalog, the nbgrader preprocessors, builds and checks.

Students never need these; `course --help` (installed with the package) lists the commands.
"""
