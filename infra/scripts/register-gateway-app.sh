#!/bin/sh
# azd preprovision hook (azure.yaml): registers the gateway's Entra application once per azd environment —
# its app roles from infra/gateway-app-roles.json, App ID URI api://<app id>, a service principal so callers
# can be granted roles — and stores its ids in the environment (GATEWAY_APP_ID, GATEWAY_AUDIENCE), from which
# infra/main.parameters.json passes them to the deployment. Running it again updates the roles and URI.
#
# Needs az (signed in with `az login`, allowed to register applications in the tenant) and azd.
set -eu

env_name="${AZURE_ENV_NAME:?run this through azd (azd provision or azd up), which sets AZURE_ENV_NAME}"
# The subscription in the name keeps two people's "dev" environments in one tenant apart.
subscription="${AZURE_SUBSCRIPTION_ID:-}"
name="keyless-gateway-$env_name${subscription:+-${subscription%%-*}}"
roles_file="$(cd "$(dirname "$0")/.." && pwd)/gateway-app-roles.json"

for tool in az azd; do
  command -v "$tool" >/dev/null 2>&1 || { echo "register-gateway-app: $tool is not installed; it is needed to register the gateway's app." >&2; exit 1; }
done
az account show >/dev/null 2>&1 || { echo "register-gateway-app: az is not signed in; run 'az login' (azd's own login does not cover Microsoft Graph)." >&2; exit 1; }

# A new app takes a few seconds to reach every directory replica: retry what follows its creation.
retry() {
  attempt=1
  until "$@"; do
    [ "$attempt" -ge 6 ] && return 1
    echo "register-gateway-app: retrying in $((attempt * 5)) s (a new registration replicates for a few seconds)" >&2
    sleep $((attempt * 5))
    attempt=$((attempt + 1))
  done
}

# The app this environment registered before (azd passes its values to hooks); else one found by name.
app_id="${GATEWAY_APP_ID:-}"
if [ -n "$app_id" ] && ! az ad app show --id "$app_id" --query appId -o tsv >/dev/null 2>&1; then
  echo "register-gateway-app: GATEWAY_APP_ID $app_id is not an app of this tenant; registering $name instead" >&2
  app_id=""
fi
if [ -z "$app_id" ]; then
  app_id="$(az ad app list --filter "displayName eq '$name'" --query '[0].appId' -o tsv)"
fi
if [ -z "$app_id" ]; then
  app_id="$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv)"
  echo "Registered the gateway's app $name: client id $app_id"
else
  echo "The gateway's app exists: client id $app_id"
fi

# Graph refuses to change or remove an enabled role in one step: to retire a role, first set its
# "isEnabled" to false in gateway-app-roles.json and provision, then delete it.
retry az ad app update --id "$app_id" --identifier-uris "api://$app_id" --app-roles "@$roles_file"

sp_id="$(az ad sp list --filter "appId eq '$app_id'" --query '[0].id' -o tsv)"
if [ -z "$sp_id" ]; then
  retry az ad sp create --id "$app_id" --query id -o tsv >/dev/null
  echo "Created the service principal of $name"
fi

azd env set GATEWAY_APP_ID "$app_id"
azd env set GATEWAY_AUDIENCE "api://$app_id"
echo "Callers request tokens for api://$app_id; grant them roles with infra/scripts/grant-gateway-role.sh."
