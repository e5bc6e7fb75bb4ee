"""GraphQL operations used by the API tests, each a module-level constant."""

APPLY = """
mutation Apply($input: ApplyForLoanInput!) {
  applyForLoan(input: $input) {
    application { id reference status version amountRequested termMonths availableActions
                  applicant { fullName email } product { code } }
    userErrors { code field message }
  }
}
"""

DECIDE = """
mutation Decide($input: DecideApplicationInput!) {
  decideApplication(input: $input) {
    application { id status version availableActions latestDecision { outcome reason } }
    decision { id outcome reason decidedBy approvedAmount annualInterestRate termMonths }
    loan { id reference status principal currency annualInterestRate termMonths version
           application { id } applicant { email } }
    userErrors { code field message }
  }
}
"""

WITHDRAW = """
mutation Withdraw($input: WithdrawApplicationInput!) {
  withdrawApplication(input: $input) {
    application { id status version withdrawalReason availableActions }
    userErrors { code field message }
  }
}
"""

APPLICATION = """
query One($id: ID!) {
  application(id: $id) {
    id reference status version
    decisions { outcome reason decidedBy }
    latestDecision { outcome }
    loan { status principal }
  }
}
"""


def apply_input(**overrides: object) -> dict[str, object]:
    """A valid applyForLoan input, with overrides."""
    base: dict[str, object] = {
        "applicant": {"fullName": "John Mensah", "email": "john.mensah@example.com"},
        "productCode": "PERSONAL-USD",
        "amount": "10000",
        "termMonths": 24,
        "purpose": "Debt consolidation",
    }
    return base | overrides
