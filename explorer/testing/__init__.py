"""Drive a running explorer as a browser would, for the tests and the load test: a scripted Dash client
(``dash_client``) and a server started on a free loopback port (``server``)."""
