"""Print the folder of the shipped cloud deploy files."""

from cloud.deploy import DIR

print(DIR)
