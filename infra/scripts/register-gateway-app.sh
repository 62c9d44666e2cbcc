#!/bin/sh
# azd preprovision hook (azure.yaml): registers the gateway's Entra application once per azd environment —
# its app roles from infra/gateway-app-roles.json, App ID URI api://<app id>, a service principal so callers
# can be granted roles — and stores its ids in the environment (GATEWAY_APP_ID, GATEWAY_AUDIENCE), from which
# infra/main.parameters.json passes them to the deployment. Running it again updates the roles and URI.
#
# Needs az (signed in with `az login`, allowed to register applications in the tenant) and azd.
set -eu

env_name="${AZURE_ENV_NAME:?run this through azd (azd provision or azd up), which sets AZURE_ENV_NAME}"
name="keyless-gateway-$env_name"
roles_file="$(cd "$(dirname "$0")/.." && pwd)/gateway-app-roles.json"

for tool in az azd; do
  command -v "$tool" >/dev/null 2>&1 || { echo "register-gateway-app: $tool is not installed; it is needed to register the gateway's app." >&2; exit 1; }
done
az account show >/dev/null 2>&1 || { echo "register-gateway-app: az is not signed in; run 'az login' (azd's own login does not cover Microsoft Graph)." >&2; exit 1; }

app_id="$(az ad app list --filter "displayName eq '$name'" --query '[0].appId' -o tsv)"
if [ -z "$app_id" ]; then
  app_id="$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv)"
  echo "Registered the gateway's app $name: client id $app_id"
else
  echo "The gateway's app $name exists: client id $app_id"
fi

# Graph refuses to change or remove an enabled role in one step: to retire a role, first set its
# "isEnabled" to false in gateway-app-roles.json and provision, then delete it.
az ad app update --id "$app_id" --identifier-uris "api://$app_id" --app-roles "@$roles_file"

if [ -z "$(az ad sp list --filter "appId eq '$app_id'" --query '[0].id' -o tsv)" ]; then
  az ad sp create --id "$app_id" --query id -o tsv >/dev/null
  echo "Created the service principal of $name"
fi

azd env set GATEWAY_APP_ID "$app_id"
azd env set GATEWAY_AUDIENCE "api://$app_id"
echo "Callers request tokens for api://$app_id; grant them roles with infra/scripts/grant-gateway-role.sh."
