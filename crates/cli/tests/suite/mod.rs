mod access;
mod cli;
mod coord;
mod harness;
mod robustness;
mod security;
