mod cli;
mod harness;
mod robustness;
