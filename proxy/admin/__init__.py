"""User management without SQL: the operations shared by the CLI and the dashboard
(``proxy.admin.users``, no web dependency) and the dashboard / JSON API served with the proxy
(``proxy.admin.app``, ``proxy.admin.server``).

Every change goes through ``auth.accounts.AccountManager``, the same code the SQL statements use,
so the rules (protected accounts, policy profile, administrator scope) are identical whichever
way a change is made.
"""
