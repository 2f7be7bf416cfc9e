"""Request priorities: interactive calls always first, bulk work yielding wave by wave."""

from workers.teacher import TEACHER_PRIORITY, request_priority
from workers.teacher_server import server_command


def test_interactive_calls_go_ahead_of_any_bulk_call():
    assert request_priority("interactive", 0, 8) == TEACHER_PRIORITY["interactive"] == 0
    assert request_priority("interactive", 500, 8) == 0
    assert request_priority("bulk", 0, 8) == TEACHER_PRIORITY["bulk"] > 0


def test_a_bulk_client_yields_by_one_per_wave_it_has_sent():
    assert [request_priority("bulk", sent, 8) for sent in (0, 7, 8, 15, 16, 80)] == [1, 1, 2, 2, 3, 11]
    assert request_priority("bulk", 3, 0) == 4, "a zero concurrency counts as one per wave"


def test_the_bundled_teacher_schedules_by_priority():
    command = server_command("/models/teacher", "teacher", 8011)
    assert command[command.index("--scheduling-policy") + 1] == "priority"
