mod bus;
mod common;
mod concurrency;
mod isolation;
mod shapes;
mod tasks;
mod time;
