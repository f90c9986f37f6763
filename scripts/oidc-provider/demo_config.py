"""The demo's OpenID provider configuration (scripts/demo.sh), printed as the JSON argument of
provider.mjs: the portal as a confidential client, and the demo people with the claims the
portal maps (accounts/oidc.py). tests/test_sso.py signs in with the same configuration."""

import argparse
import json
import secrets

# Account at the provider → claims; preferred_username is the personnel number of the
# demo data (devtools seed_demo), which the portal matches onto the person's one account.
ACCOUNTS = {
    "anna": {
        "preferred_username": "m10042",
        "given_name": "Anna",
        "family_name": "Schmidt",
        "email": "anna.schmidt@musterstadt.example",
        "groups": ["staff"],
    },
    "thomas": {
        "preferred_username": "m10017",
        "given_name": "Thomas",
        "family_name": "Becker",
        "email": "thomas.becker@musterstadt.example",
        "groups": ["staff"],
    },
}


def config(*, port: int, issuer: str, client_id: str, client_secret: str, portals) -> dict:
    return {
        "port": port,
        "issuer": issuer,
        "cookieKey": secrets.token_urlsafe(32),
        "clients": [
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": [f"{portal}/oidc/callback/" for portal in portals],
                "post_logout_redirect_uris": [f"{portal}/accounts/login/" for portal in portals],
                "token_endpoint_auth_method": "client_secret_post",
            }
        ],
        "accounts": ACCOUNTS,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--portal", action="append", required=True, help="base URL, repeatable")
    args = parser.parse_args()
    portals = list(dict.fromkeys(args.portal))
    print(json.dumps(config(port=args.port, issuer=args.issuer, client_id=args.client_id,
                            client_secret=args.client_secret, portals=portals)))  # fmt: skip
