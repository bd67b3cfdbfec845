"""SQL handling: a MySQL/MariaDB-faithful lexer and the statement classifier.

``lexer`` splits client text into statements exactly as the target server will read them
(executable comments judged by its version) and gives every statement a *shape key*;
``analyze`` turns each statement into a decision-ready :class:`~proxy.sql.analyze.Statement`.
"""
