"""Programs that attack a unit-test harness instead of solving the task.

Each attack class is code appended to a wrong solution (``{entry}`` is the function the tests
call). Against a harness that runs the tests in the program's own process, most of them turn
every failing test into a pass; against payoff's split-process harness none may pass anything.
`payoff audit` tries them all on code tasks and names the class in its report.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass


@dataclass(frozen=True)
class CodeAttack:
    name: str
    note: str
    code: str  # a template: {entry} is the name of the function under test

    def program(self, entry: str, wrong_body: str | None = None) -> str:
        """A wrong solution of `entry` (return None) followed by the attack."""
        head = wrong_body if wrong_body is not None else f"def {entry}(*args, **kwargs):\n    return None\n"
        return head + "\n" + self.code.replace("{entry}", entry)


ATTACKS: tuple[CodeAttack, ...] = (
    CodeAttack("harness_state", "rebind the harness's saved builtins so a test's exec does nothing", """
try:
    for _d in [v for v in list(globals().values()) if type(v) is dict and "exec" in v]:
        _d["exec"] = lambda *a, **k: None
        _d["compile"] = lambda *a, **k: None
except Exception:
    pass
"""),
    CodeAttack("verdict_channel", "monkeypatch os.write so a 'fail' verdict is written as 'pass'", """
import os as _os
def _write(fd, data, _real=_os.write):
    if type(data) is bytes:
        data = data.replace(b" fail ", b" pass ").replace(b'"pass": false', b'"pass": true')
    return _real(fd, data)
_os.write = _write
"""),
    CodeAttack("always_equal", "return an object whose ==, <, bool, arithmetic all say yes", """
class _Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __bool__(self): return True
    def __hash__(self): return 0
    def __len__(self): return 0
    def __contains__(self, item): return True
    def __iter__(self): return iter(())
    def __getitem__(self, key): return self
    def __getattr__(self, name): return self
    def __call__(self, *a, **k): return self
    def __sub__(self, other): return 0.0
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __sub__
    def __abs__(self): return 0.0
    def __neg__(self): return self
    def __round__(self, n=0): return self
    def __float__(self): return 0.0
    def __int__(self): return 0
    def __index__(self): return 0
    def __str__(self): return ""
    __repr__ = __str__
def {entry}(*args, **kwargs):
    return _Anything()
"""),
    CodeAttack("early_exit", "exit before the tests, at load and inside the function", """
import sys as _sys
_real = {entry}
def {entry}(*args, **kwargs):
    _sys.exit(0)
exit(0)
"""),
    CodeAttack("signals", "kill the judging process or the process group, then die", """
import os as _os, signal as _signal
def {entry}(*args, **kwargs):
    for _action in (lambda: _os.kill(_os.getppid(), _signal.SIGKILL), lambda: _os.killpg(0, _signal.SIGKILL)):
        try:
            _action()
        except Exception:
            pass
    _os._exit(0)
"""),
    CodeAttack("frame_inspection", "walk the caller's frames to the harness and forge its verdict lines", """
def {entry}(*args, **kwargs):
    import sys, os
    frame = sys._getframe()
    while frame.f_back is not None:
        frame = frame.f_back
        fd = frame.f_globals.get("__payoff_fd")
        formats = [c for c in frame.f_code.co_consts if type(c) is str and c.endswith(" %d pass\\n")]
        if fd and formats:
            for i in range(200):
                os.write(fd, (formats[0] % i).encode())
            os._exit(0)
    return None
"""),
    CodeAttack("gc_objects", "find the harness's state through gc and patch it", """
import gc as _gc
for _o in _gc.get_objects():
    if type(_o) is dict and "exec" in _o and "compile" in _o and _o is not globals():
        _o["exec"] = lambda *a, **k: None
"""),
    CodeAttack("ctypes_memory", "scan the process's own memory for the verdict token and forge lines; raw syscalls", """
import ctypes as _ct, os as _os, re as _re
try:
    _libc = _ct.CDLL(None)
    _libc.syscall(62, _os.getppid(), 9)  # kill(2) on the parent, past os.kill
    _tokens = set()
    for _line in open("/proc/self/maps").read().splitlines():
        _parts = _line.split()
        if _parts[1] != "rw-p" or (len(_parts) > 5 and _parts[5] not in ("[heap]",)):
            continue
        _lo, _hi = (int(x, 16) for x in _parts[0].split("-"))
        if _hi - _lo > (256 << 20):
            continue
        try:
            _chunk = _ct.string_at(_lo, _hi - _lo)
        except Exception:
            continue
        _tokens.update(_re.findall(rb"([0-9a-f]{32}) %d pass", _chunk))
    for _fd in map(int, _os.listdir("/proc/self/fd")):
        for _token in _tokens:
            for _i in range(200):
                try:
                    _os.write(_fd, _token + b" %d pass\\n" % _i)
                except OSError:
                    pass
    if _tokens:
        _os._exit(0)
except Exception:
    pass
"""),
    CodeAttack("sys_modules", "replace os in sys.modules with a copy whose write forges verdicts", """
import sys as _sys, types as _types, os as _real_os
_fake = _types.ModuleType("os")
_fake.__dict__.update(_real_os.__dict__)
def _write(fd, data, _real=_real_os.write):
    if type(data) is bytes:
        data = data.replace(b" fail ", b" pass ").replace(b'"pass": false', b'"pass": true')
    return _real(fd, data)
_fake.write = _write
_sys.modules["os"] = _fake
"""),
    CodeAttack("forged_output", "print verdict lines, to its own stdout and to the parent's through /proc", """
import os as _os
_lines = "".join('{"test": %d, "pass": true}\\n' % i for i in range(200)) + '{"done": true}\\n'
for _target in ("/proc/%d/fd/1" % _os.getppid(), "/proc/self/fd/1"):
    try:
        with open(_target, "w") as _f:
            _f.write(_lines)
    except OSError:
        pass
print(_lines)
"""),
    CodeAttack("shadowed_names", "redefine the names the tests check with (abs, all, any, round, a math of its own); "
               "answer NaN (equal to nothing) where the wrong solution has no answer", """
_shadowed_entry = {entry}
def {entry}(*args, **kwargs):
    result = _shadowed_entry(*args, **kwargs)
    return float("nan") if result is None else result
def abs(*args, **kwargs):
    return 0
def all(*args, **kwargs):
    return True
any = all
def round(*args, **kwargs):
    return 0
class math:
    isclose = staticmethod(lambda *args, **kwargs: True)
    fabs = staticmethod(lambda *args, **kwargs: 0.0)
"""),
    CodeAttack("ptrace", "attach to the judging process with ptrace", """
import ctypes as _ct, os as _os
try:
    _libc = _ct.CDLL(None, use_errno=True)
    _libc.ptrace(16, _os.getppid(), 0, 0)  # PTRACE_ATTACH
    _fd = _os.open("/proc/%d/mem" % _os.getppid(), _os.O_RDWR)
except Exception:
    pass
"""),
)


def entry_points(solution: str) -> list[str]:
    """The top-level function names a solution defines (the names a harness will call)."""
    try:
        tree = ast.parse(solution)
    except (SyntaxError, ValueError):
        return []
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
