"""User management without SQL: the operations shared by the CLI and the dashboard
(``proxy.manage.admin.users``, no web dependency) and the dashboard / JSON API served with the proxy
(``proxy.manage.admin.app``, ``proxy.manage.admin.server``).

Every change goes through ``auth.accounts.AccountManager``, the same code the SQL statements use,
so the rules (protected accounts, policy profile, administrator scope) are identical whichever
way a change is made.
"""
