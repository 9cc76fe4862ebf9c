"""A Microsoft Graph stand-in for tests: aiohttp on 127.0.0.1, managed-identity tokens, faults, paging.

    async with GraphStandin(home_tenant=TENANT) as graph:
        alice = graph.state.add_user("alice@contoso.com", methods=[payloads.fido2_method()], registered=["fido2"])
        graph.add_fault(Fault.throttle("/authentication/methods", retry_after=1))
        monkeypatch.setenv(...graph.environ())      # IDENTITY_ENDPOINT / IDENTITY_HEADER
        config: [graph] endpoint = graph.url

Other families add endpoints in their own module: `def register(router, standin)` passed in `extensions=[...]`,
their data in `standin.state.extra[...]`; `standin.state_for(request)` gives the caller's tenant.
"""

from tests.support.graph_standin import payloads
from tests.support.graph_standin.parsing import assert_parses
from tests.support.graph_standin.server import GraphStandin, graph_error, json_response, parse_filter
from tests.support.graph_standin.state import Fault, Recorded, TenantState, error_body

__all__ = [
    "Fault",
    "GraphStandin",
    "Recorded",
    "TenantState",
    "assert_parses",
    "error_body",
    "graph_error",
    "json_response",
    "parse_filter",
    "payloads",
]
