//! Runs the black-box scenario suite in-process: the core served inside this test process
//! (`portcullis_tests::hosts::in_process`) on a clock the test controls and a seeded RNG, one
//! server per scenario, over real HTTP on loopback so the scenarios run unchanged. This is
//! the only runner of the `clocked!` list (scenarios that move the server's clock). The
//! lists are `common/scenario_lists.rs`, the same file every runner of the suite includes.

use portcullis_tests::hosts::in_process::InProcess;

portcullis_tests::scenario_runner!(InProcess, clocked);
include!("common/scenario_lists.rs");
