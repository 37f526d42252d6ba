"""Sources of a structural double of a remote-code family, copied into its checkpoint folders."""
