"""nbgrader configuration for the Long memory course; run every nbgrader command from this folder."""

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "long-memory"
c.CourseDirectory.root = "."
# Instructor notebooks (solutions and hidden tests) live in solutions/; the student versions
# that `nbgrader generate_assignment` writes go to exercises/, which is committed.
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# Submissions: submitted/<student>/<assignment>/; grading output: autograded/ and feedback/.
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# SQLite by default; a large course points this at PostgreSQL instead, e.g.
# c.CourseDirectory.db_url = "postgresql://grader:secret@dbhost/long_memory"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# Only notebooks are handed to students; nothing else from solutions/<assignment>/ is copied.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.py", "*.md", "*.txt"]

# What a student sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Every cell of a submission gets at most this many seconds when it is autograded; a
# notebook that hangs loses the cells that time out and the batch goes on.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.Execute.startup_timeout = 120

# `nbgrader zip_collect ASSIGNMENT` reads an LMS's bulk download placed in
# downloaded/ASSIGNMENT/archive/ (zip files or loose files), extracts it to
# downloaded/ASSIGNMENT/extracted/ and copies each notebook to submitted/. The file names
# follow Canvas: <login>_[late_]<user id>_<submission id>_<the file's own name>, where the
# LMS may add "-N" before ".ipynb" for a resubmission. Adapt the pattern for another LMS.
c.FileNameCollectorPlugin.named_regexp = (
    r"^.*/(?P<student_id>[A-Za-z0-9.-]+)_(?:late_)?\d+_\d+_(?P<file_id>[A-Za-z0-9_]+?)(?:-\d+)?\.ipynb$"
)

# Autograding runs students' code, so it is hardened (course_grader/, and the instructor
# guide's section "What grading protects"): each submission is first rebuilt in the released
# structure, then runs in a bubblewrap sandbox (no network, no view of the course folder,
# limits on CPU, memory, processes and output) with the grading helpers restored before every
# test cell. Without bubblewrap, autograde refuses; `--Sandbox.enabled=False` grades knowingly
# without it.
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "course_grader.structure.RestoreStructure",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "course_grader.execute.GuardedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
