//! The integration tests, one binary (it links polars once): whole CLI runs and library runs
//! over real Parquet archives, against real storage emulators and real notebooks.

mod baseline;
mod cache;
mod cli;
mod cluster;
mod common;
mod deploy;
mod entra;
mod exclusions;
mod faults;
mod fuzz;
mod hostile;
mod json;
mod killed;
mod layouts;
mod notebooks;
mod pages;
mod precise;
mod reader;
mod replay;
mod semantics;
mod statistics;
mod storage;
mod sweep;
