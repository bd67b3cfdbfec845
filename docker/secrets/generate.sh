#!/bin/sh
# Create the secret files compose.yml mounts (once; existing files are kept) and docker/.env.
set -eu
cd "$(dirname "$0")"
# The directory is private to you; the files inside must be readable by the containers'
# users (shardgate runs as uid 10001, mysqld as 999), as compose bind-mounts them unchanged.
chmod 700 .
for name in catalog_root_password catalog_password shard_root_password shardgate_secret; do
    [ -s "$name" ] || python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$name"
    chmod 444 "$name"
done
umask 077
[ -s ../.env ] || printf 'SHARDGATE_METRICS_TOKEN=%s\n' \
    "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" > ../.env
echo "secrets in $(pwd); metrics token in $(cd .. && pwd)/.env"
