mod torture;
mod unit;
