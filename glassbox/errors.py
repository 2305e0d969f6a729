"""The one error type a user ever sees: a plain sentence saying what is wrong and what to do."""


class UserError(Exception):
    """Bad input from the user. The CLI prints it as one line and exits with code 2."""
