#!/usr/bin/env python3
"""Verify latchkey tokens with PyJWT from the JWKS, as a Python service would.

Reads JSON on stdin: {"issuer", "jwks", "tokens": [{"token", "audience"}]}.
Each token is verified with the JWK its `kid` names, pinned to the algorithm
that JWK declares (never the token header's). Prints one JSON line per token
and exits non-zero if any fails.
"""
import json
import sys

import jwt


def main() -> int:
    job = json.load(sys.stdin)
    keys = {k["kid"]: k for k in job["jwks"]["keys"]}
    failed = 0
    for item in job["tokens"]:
        token = item["token"]
        kid = jwt.get_unverified_header(token)["kid"]
        jwk = keys[kid]
        key = jwt.PyJWK.from_dict(jwk)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[jwk["alg"]],
                audience=item["audience"],
                issuer=job["issuer"],
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            print(json.dumps({"alg": jwk["alg"], "ok": True, "sub": claims["sub"]}))
        except jwt.PyJWTError as err:
            failed += 1
            print(json.dumps({"alg": jwk["alg"], "ok": False, "error": repr(err)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
