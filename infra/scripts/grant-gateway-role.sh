#!/bin/sh
# Grants a caller (a managed identity or another app's service principal) app roles of the gateway, so its
# tokens for api://<gateway app id> carry them in the `roles` claim. Existing grants are left as they are.
#
#   infra/scripts/grant-gateway-role.sh <caller principal (object) id> <role> [<role>...]
#   e.g. infra/scripts/grant-gateway-role.sh "$(az identity show -g rg-shop -n id-storefront --query principalId -o tsv)" Recommendations.Read
#
# The gateway's app is the one of the current azd environment (GATEWAY_APP_ID), or set GATEWAY_APP_ID yourself.
# Needs az, signed in as someone allowed to assign app roles (the app's owner, or an admin).
set -eu

usage="usage: $0 <caller principal (object) id> <role> [<role>...] (the roles are in infra/gateway-app-roles.json)"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
principal="$1"
shift
case "$principal" in
  ????????-????-????-????-????????????) ;;
  *) echo "grant-gateway-role: '$principal' is not an object id (a GUID); pass the caller's principal id, not its name or client id." >&2; exit 2 ;;
esac

app_id="${GATEWAY_APP_ID:-$(azd env get-value GATEWAY_APP_ID 2>/dev/null || true)}"
[ -n "$app_id" ] || { echo "grant-gateway-role: no GATEWAY_APP_ID; run 'azd provision' first (it registers the gateway's app), or set GATEWAY_APP_ID." >&2; exit 1; }
gateway_sp="$(az ad sp list --filter "appId eq '$app_id'" --query '[0].id' -o tsv)"
[ -n "$gateway_sp" ] || { echo "grant-gateway-role: the gateway's app $app_id has no service principal; run 'azd provision' again." >&2; exit 1; }

for role in "$@"; do
  role_id="$(az ad sp show --id "$gateway_sp" --query "appRoles[?value=='$role' && isEnabled] | [0].id" -o tsv)"
  if [ -z "$role_id" ]; then
    echo "grant-gateway-role: the gateway has no app role '$role' (it has: $(az ad sp show --id "$gateway_sp" --query "join(', ', appRoles[?isEnabled].value)" -o tsv))." >&2
    exit 1
  fi
  # The caller's own assignments (a handful), not the gateway's (one page of 100 may not hold them all).
  granted="$(az rest --method GET --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$principal/appRoleAssignments" \
    --query "length(value[?resourceId=='$gateway_sp' && appRoleId=='$role_id'])" -o tsv)"
  if [ "$granted" != "0" ]; then
    echo "$principal already holds $role"
    continue
  fi
  az rest --method POST --uri "https://graph.microsoft.com/v1.0/servicePrincipals/$gateway_sp/appRoleAssignedTo" \
    --headers "Content-Type=application/json" \
    --body "{\"principalId\": \"$principal\", \"resourceId\": \"$gateway_sp\", \"appRoleId\": \"$role_id\"}" >/dev/null
  echo "Granted $role to $principal (new tokens carry it; cached tokens do not, for up to 24 h with managed identities)"
done
