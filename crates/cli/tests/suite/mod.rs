mod access;
mod cli;
mod coord;
mod harness;
mod http;
mod robustness;
mod security;
