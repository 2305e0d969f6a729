"""The one error type a user ever sees: a plain sentence saying what is wrong and what to do."""


class UserError(Exception):
    """Bad input from the user. The CLI prints it as one line and exits with code 2."""


class TooLarge(UserError):
    """An input larger than a bound the user set (a server answers 413 rather than 422)."""


class FromRank0(UserError):
    """Under torchrun: the user error that rank 0 met and says, on the other ranks, which end with it in silence
    (the decision was rank 0's, shared with every process)."""


class Stopped(Exception):
    """A run under torchrun stopped on request (a signal) at the end of a step, its last checkpoint written. The
    message says where it stopped and how to resume; `main` is True on the process that says it (rank 0)."""

    def __init__(self, message: str, main: bool):
        super().__init__(message)
        self.main = main
