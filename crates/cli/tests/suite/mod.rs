mod access;
mod cli;
mod coord;
mod harness;
mod http;
mod persist;
mod robustness;
mod security;
