"""SQL handling: a MySQL/MariaDB-faithful lexer and the statement classifier.

``lexer`` splits client text into statements exactly as the server will read them (executable
comments unwrapped) and gives every statement a *shape key*; ``analyze`` turns each statement
into a decision-ready :class:`~proxy.sql.analyze.Statement`.
"""
