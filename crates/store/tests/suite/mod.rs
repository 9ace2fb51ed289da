mod common;
mod crash;
mod damage;
mod encryption;
mod migration;
mod roundtrip;
