#!/bin/sh
# Image entrypoint: compose secrets arrive as files under /run/secrets. The values the code
# reads from the environment are exported here, so no secret sits in compose.yaml or the image.
set -eu

if [ -n "${DATABASE_PASSWORD_FILE:-}" ] && [ -s "${DATABASE_PASSWORD_FILE}" ]; then
  password=$(cat "${DATABASE_PASSWORD_FILE}")
  # mysql+asyncmy://user@host:3306/db -> mysql+asyncmy://user:<password>@host:3306/db
  # (deploy/gen_secrets.py writes URL-safe hex passwords, so no escaping is needed).
  DATABASE_URL="${DATABASE_URL%%@*}:${password}@${DATABASE_URL#*@}"
  export DATABASE_URL
fi

if [ -z "${GOOGLE_API_KEY:-}" ] && [ -n "${GOOGLE_API_KEY_FILE:-}" ] && [ -s "${GOOGLE_API_KEY_FILE}" ]; then
  # An empty secret file means "no key": llm then uses its offline embedder.
  GOOGLE_API_KEY=$(cat "${GOOGLE_API_KEY_FILE}")
  export GOOGLE_API_KEY
fi

exec "$@"
