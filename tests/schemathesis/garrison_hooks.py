"""Schemathesis hooks for garrison: requests go to the tenant the token belongs to, so that
they reach the handlers instead of stopping at the tenancy check (403)."""
import os

import schemathesis

ACCOUNT = os.environ["GARRISON_ACCOUNT"]


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters and "account_id" in path_parameters:
        path_parameters["account_id"] = ACCOUNT
    return path_parameters
