mod common;
mod crash;
mod damage;
mod encryption;
mod hostile;
mod migration;
mod roundtrip;
