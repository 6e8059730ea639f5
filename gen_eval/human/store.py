"""The judgement database: SQLite in WAL mode under ``RUNS_DIR/human/``, one row per judgement.

Why SQLite: it is in Python's standard library, lets many processes write one file safely (each
write takes the database's lock for a moment; WAL lets readers go on meanwhile), and a
transaction it reports committed survives the process being killed. Every call opens its own
connection, so one store is safe to share between the dashboard's threads and processes, and
``record`` returns only after its row is committed (``synchronous=FULL``: also through a power
cut once the disk has it).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gen_eval.errors import GenEvalError
from gen_eval.human.model import TIMEOUT, Study, StudySettings, Trial
from gen_eval.human.schema import SCHEMA_VERSION, upgrade

DATABASE = Path("human") / "judgements.sqlite"
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read out loud and typed by hand
CODE_LENGTH = 6
EXPORT_FORMATS = ("csv", "json")
COLUMNS = (
    "study_id",
    "participant_id",
    "trial_id",
    "position",
    "kind",
    "run",
    "sample_id",
    "truth",
    "answer",
    "correct",
    "seconds",
    "answered_at",
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class HumanStore:
    """Studies, participants and judgements in one SQLite file.

    Parameters
    ----------
    path : str or Path
        The database file; created (with its folder) when missing, migrated when older.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GenEvalError(
                f"{self.path.parent}: cannot create the study folder ({exc.strerror})"
            ) from exc
        with self._connect() as connection:
            try:
                found, now = upgrade(connection)
            except sqlite3.DatabaseError as exc:
                raise GenEvalError(f"{self.path}: not a judgement database ({exc}); move it aside") from exc
        if now == -1:
            raise GenEvalError(f"{self.path}: an SQLite file but not a judgement database; move it aside")
        if now > SCHEMA_VERSION:
            raise GenEvalError(
                f"{self.path}: written by a newer gen-eval (schema {now}, this one reads up to {SCHEMA_VERSION}); "
                "upgrade gen-eval"
            )
        self.migrated_from = found if 0 < found < now else None  # the version it was migrated from

    @classmethod
    def for_runs(cls, runs_dir: str | Path) -> HumanStore:
        """The store of a runs folder: ``runs_dir/human/judgements.sqlite``."""
        runs_dir = Path(runs_dir)
        if not runs_dir.is_dir():
            raise GenEvalError(f"{runs_dir}: no such runs folder; pass the folder that holds your runs")
        return cls(runs_dir / DATABASE)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            # Autocommit: every statement outside an explicit BEGIN is its own committed transaction.
            connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise GenEvalError(f"{self.path}: cannot open the judgement database ({exc})") from exc
        try:
            connection.execute("PRAGMA busy_timeout = 60000")
            if connection.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise GenEvalError(
                    f"{self.path}: the file system does not allow SQLite's WAL mode; use a local disk"
                )
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            yield connection
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError):
                raise
            raise GenEvalError(f"{self.path}: database error ({exc}); is it a judgement database?") from exc
        finally:
            connection.close()

    # --- studies -------------------------------------------------------------------------------

    def create_study(
        self,
        runs_dir: str | Path,
        runs: list[str],
        settings: StudySettings | None = None,
        *,
        trust_code: bool = False,
        show_progress: bool = True,
    ) -> Study:
        """Snapshot the runs' samples and open a study over them.

        Parameters
        ----------
        runs_dir : str or Path
            The runs folder.
        runs : list of str
            Run folders relative to ``runs_dir`` (as the dashboard names them).
        settings : StudySettings, optional
            Defaults: single mode, no time limit, 4 practice, 2 attention checks, 40 trials.
        trust_code : bool
            Allow sampling a run's generator file (``file.py:factory``) again.
        show_progress : bool
            A bar while samples are copied.

        Returns
        -------
        Study
            With its ``code`` for participants to join.
        """
        from gen_eval.human.snapshot import write_snapshot

        settings = settings or StudySettings()
        runs_dir = Path(runs_dir).resolve()
        runs = [str(name).strip("/") for name in runs]
        if not runs:
            raise GenEvalError("a study needs at least one run: pass --runs A,B")
        if len(set(runs)) != len(runs):
            raise GenEvalError(f"--runs {','.join(runs)}: a run is named twice")
        for name in runs:
            if (
                not (runs_dir / name).resolve().is_relative_to(runs_dir)
            ):  # results find runs below their folder
                raise GenEvalError(f"--runs {name}: name a run inside {runs_dir}, relative to it")
            if not (runs_dir / name / "manifest.json").is_file():
                raise GenEvalError(
                    f"{runs_dir / name}: not a run in {runs_dir}; name run folders relative to it"
                )
        created = datetime.now(timezone.utc)
        study_id = f"{created:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        folder = runs_dir / "human" / study_id
        counts = write_snapshot(folder, runs_dir, runs, settings, trust_code, show_progress)
        for _ in range(20):  # a code already taken (1 in 887 million per study) is drawn again
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            try:
                with self._connect() as connection:
                    connection.execute(
                        "INSERT INTO studies VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                        (
                            study_id,
                            code,
                            str(runs_dir),
                            json.dumps(runs),
                            json.dumps(settings.to_dict()),
                            json.dumps(list(counts)),
                            created.isoformat(timespec="seconds"),
                        ),
                    )
                break
            except sqlite3.IntegrityError:
                continue
        return self.get_study(study_id)

    def _study(self, row: sqlite3.Row | tuple[Any, ...]) -> Study:
        study_id, code, runs_dir, runs, settings, counts, created, closed = row
        if self.path.name == DATABASE.name and self.path.parent.name == DATABASE.parent.name:
            # RUNS_DIR/human/judgements.sqlite: the folder it is in now, so a moved class folder still works
            runs_dir = self.path.parent.parent
        return Study(
            study_id=study_id,
            code=code,
            runs_dir=Path(runs_dir),
            runs=tuple(json.loads(runs)),
            settings=StudySettings.from_dict(json.loads(settings)),
            created=created,
            closed=bool(closed),
            counts=tuple(json.loads(counts)),
        )

    _STUDY_COLUMNS = "study_id, code, runs_dir, runs, settings, counts, created, closed"

    def studies(self) -> list[Study]:
        """Every study, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(f"SELECT {self._STUDY_COLUMNS} FROM studies ORDER BY rowid")
            return [self._study(row) for row in rows.fetchall()]

    def find_study(self, code: str) -> Study | None:
        """The study with this code (case, spaces and dashes ignored), or None."""
        wanted = "".join(ch for ch in code.upper() if ch.isalnum())
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT {self._STUDY_COLUMNS} FROM studies WHERE code = ?", (wanted,)
            ).fetchone()
        return None if row is None else self._study(row)

    def get_study(self, study_id: str) -> Study:
        """The study ``study_id``; a one-line error naming the known ones when there is none."""
        with self._connect() as connection:
            row = connection.execute(
                f"SELECT {self._STUDY_COLUMNS} FROM studies WHERE study_id = ?", (study_id,)
            ).fetchone()
        if row is None:
            known = ", ".join(study.study_id for study in self.studies()) or "none yet"
            raise GenEvalError(f"{self.path}: no study {study_id!r} (studies: {known})")
        return self._study(row)

    def close_study(self, study_id: str) -> None:
        """Take no more answers in the study (its results stay)."""
        self.get_study(study_id)
        with self._connect() as connection:
            connection.execute("UPDATE studies SET closed = 1 WHERE study_id = ?", (study_id,))

    # --- participants and answers --------------------------------------------------------------

    def join(self, study_id: str) -> str:
        """A new participant of the study: a random id (no name, nothing personal)."""
        study = self.get_study(study_id)
        if study.closed:
            raise GenEvalError(f"study {study.code} is closed; ask the instructor for the new code")
        participant_id = f"p-{secrets.token_hex(6)}"
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO participants VALUES (?, ?, ?)", (study_id, participant_id, _now())
            )
        return participant_id

    def participants(self, study_id: str) -> list[str]:
        """The study's participant ids, in the order they joined."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT participant_id FROM participants WHERE study_id = ? ORDER BY joined, participant_id",
                (study_id,),
            ).fetchall()
        return [row[0] for row in rows]

    def trials(self, study_id: str, participant_id: str) -> list[Trial]:
        """The participant's trials in the order shown: practice first, then their own seeded order."""
        from gen_eval.human.schedule import schedule

        return schedule(self.get_study(study_id), participant_id)

    def answered(self, study_id: str, participant_id: str) -> set[int]:
        """The trial ids the participant has answered."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT trial_id FROM judgements WHERE study_id = ? AND participant_id = ?",
                (study_id, participant_id),
            ).fetchall()
        return {row[0] for row in rows}

    def next_trial(self, study_id: str, participant_id: str) -> Trial | None:
        """The participant's first unanswered trial (so they continue after a restart); None when done or closed."""
        from gen_eval.human.schedule import schedule

        study = self.get_study(study_id)  # read once: each read is a connection
        if study.closed:
            return None
        done = self.answered(study_id, participant_id)
        return next((trial for trial in schedule(study, participant_id) if trial.trial_id not in done), None)

    def record(self, study_id: str, participant_id: str, trial_id: int, answer: str, seconds: float) -> None:
        """Store one answer, committed before this returns; a second answer to a trial is an error.

        Parameters
        ----------
        study_id, participant_id : str
        trial_id : int
            The trial's ``trial_id`` (not its position).
        answer : str
            Single mode "real" or "fake"; pair mode "0" or "1" (the one judged fake); or
            "timeout" when the time limit ran out first.
        seconds : float
            Time from showing the trial to the answer.
        """
        from gen_eval.human.schedule import schedule

        study = self.get_study(study_id)
        if study.closed:
            raise GenEvalError(f"study {study.code} is closed: the answer was not recorded")
        trial = next((t for t in schedule(study, participant_id) if t.trial_id == trial_id), None)
        if trial is None:
            raise GenEvalError(f"study {study.code}: participant {participant_id} has no trial {trial_id}")
        if answer not in (*trial.answers(), TIMEOUT):
            raise GenEvalError(f"answer {answer!r}: give one of {', '.join((*trial.answers(), TIMEOUT))}")
        real = isinstance(seconds, numbers.Real) and not isinstance(seconds, bool)  # numpy floats too
        if not (real and math.isfinite(seconds) and seconds >= 0):
            raise GenEvalError(f"seconds {seconds!r}: give the time taken, a number of seconds >= 0")
        row = (
            study_id,
            participant_id,
            trial.trial_id,
            trial.run,
            "|".join(item.sample_id for item in trial.items),
            trial.answer_truth,
            answer,
            float(seconds),
            _now(),
            trial.kind,
            trial.position,
            int(answer == trial.answer_truth),
        )
        try:
            with self._connect() as connection:
                connection.execute(
                    "INSERT INTO judgements (study_id, participant_id, trial_id, run, sample_id, truth, answer, "
                    "seconds, answered_at, kind, position, correct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
        except sqlite3.IntegrityError as exc:
            if "FOREIGN KEY" in str(exc):
                raise GenEvalError(
                    f"study {study.code}: {participant_id} has not joined; join first"
                ) from None
            raise GenEvalError(
                f"study {study.code}: {participant_id} already answered trial {trial_id}; the first answer stands"
            ) from None

    def judgements(self, study_id: str) -> list[dict[str, Any]]:
        """Every stored judgement of the study, one dict per row (columns :data:`COLUMNS`), in answer order."""
        self.get_study(study_id)
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {', '.join(COLUMNS)} FROM judgements WHERE study_id = ? ORDER BY answered_at, rowid",
                (study_id,),
            ).fetchall()
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def export(self, study_id: str, fmt: str, out: str | Path) -> Path:
        """Write the study's judgements to ``out`` as CSV or JSON (whole or not at all).

        Returns
        -------
        Path
            ``out``.
        """
        import csv
        import io

        if fmt not in EXPORT_FORMATS:
            raise GenEvalError(f"--export {fmt!r}: choose csv or json")
        rows = self.judgements(study_id)
        out = Path(out)
        if fmt == "json":
            text = json.dumps(rows, indent=1)
        else:
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            text = buffer.getvalue()
        partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
        try:
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, out)
        except OSError as exc:
            raise GenEvalError(
                f"{out}: cannot write the export ({exc.strerror}); pick another --out"
            ) from exc
        finally:
            partial.unlink(missing_ok=True)
        return out
