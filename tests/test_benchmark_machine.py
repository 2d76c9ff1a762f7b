"""benchmarks/_machine.py: the one helper that records a run's date, load and versions in every result file."""
import importlib.util
import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("_machine", BENCHMARKS / "_machine.py")
machine = importlib.util.module_from_spec(spec)
spec.loader.exec_module(machine)


def test_stamp_records_the_date_in_the_form_asked_and_the_load():
    stamp = machine.stamp(machine.ISO)
    assert set(stamp) == {"date", "uptime"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp["date"]), stamp
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", machine.now()), machine.now()
    assert "load average" in stamp["uptime"], stamp
    assert len(machine.loadavg()) == 3 and set(machine.versions()) == {"rnnkit", "torch", "python"}


def test_no_benchmark_script_keeps_its_own_copy():
    """charlm_sweep.py (records the load inside its flock'd shell command, around the child) is the exception."""
    own = [p.name for p in BENCHMARKS.glob("*.py") if p.name not in ("_machine.py", "charlm_sweep.py")
           and re.search(r'\["uptime"\]|getloadavg\(', p.read_text())]
    assert own == [], own


def test_no_benchmark_script_states_the_machines_other_work():
    """A result file says what was measured (the load before and after), not a fixed claim that others were busy:
    the scripts once wrote "shared with other engineers' niced processes" into runs made alone on the machine."""
    claims = [p.name for p in BENCHMARKS.glob("*.py") if "other engineers" in p.read_text()]
    assert claims == [], claims
